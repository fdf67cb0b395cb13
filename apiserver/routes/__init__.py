"""One module per API resource; each exports ``ENDPOINTS``."""
