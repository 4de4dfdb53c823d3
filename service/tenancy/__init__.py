"""Who may call what: credentials and scopes. (API keys, consent and rate limits come here.)"""
