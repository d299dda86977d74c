"""Evidence that a map can be trusted: faithfulness, localisation, agreement and sanity checks."""
