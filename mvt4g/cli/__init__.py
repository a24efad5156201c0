"""The `mvt4g` command line: one small module per subcommand that parses, calls the core, prints."""
