"""What an operator watches: Prometheus metrics and structured request and socket-event logs."""
