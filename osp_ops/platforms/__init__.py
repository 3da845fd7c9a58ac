"""Adapters that run tenants somewhere: hosts (Ansible) and kubernetes."""
