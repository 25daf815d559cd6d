"The ui layer: notebook widgets and `app()` (`widgets`), the setup as code (`code`), the command line (`cli`) and the demo (`demo`)."
