"""Not code: this folder is installed as the package ``modsent.resources.ds_configs`` (setup.cfg; see modsent/resources)."""
