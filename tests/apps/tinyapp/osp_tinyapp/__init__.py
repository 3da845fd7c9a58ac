"""TinyApp, a test app: its profile (``profile.py``), catalog entry and Ansible role."""
