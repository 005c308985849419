"""Not code: this folder is installed as the package ``modsent.resources.configs`` (setup.cfg; see modsent/resources)."""
