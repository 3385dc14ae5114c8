"""Domain core of quota-uploads: the quota ledger, key scheme, configuration and models."""
