"""E-mail to customers: templates (de, en), rendering, delivery (SMTP or .eml files)."""
