"""Rendering: tenant spec + settings -> platform inputs (Helm values, Ansible vars). Pure."""
