"""What an operator sees of a running server: Prometheus metrics, OpenTelemetry traces and
structured JSON logs. The edge (`api.telemetry`) and the composition root (`app.serve`) use it;
nothing below the service layer knows it exists."""
