"""Paper tables T1–T4, one module each; :mod:`.common` writes every one of them."""
