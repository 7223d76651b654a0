"""Sales channels: orders in from shops, marketplaces, POS and apps; confirmations back out."""
