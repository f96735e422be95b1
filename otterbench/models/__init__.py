"""Model sets: the embedded tiny profile (built offline from configs) and real models by id or path."""
