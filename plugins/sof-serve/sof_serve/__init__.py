"""SOF as an HTTP service: the app, the monitoring page, and observers (``observe``)."""
