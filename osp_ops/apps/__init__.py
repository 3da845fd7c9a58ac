"""App profiles: what each participation app brings to osp-ops, one module per app.

A profile (``base.AppProfile``) is found through the ``osp_ops.apps`` entry-point group
(``loader.load_apps``), so a third app is one installable package: its profile, its
catalog entry and its Ansible role. Platforms and the engine ask the profile; none of
them names an app.
"""
