"""Reports for people: the client's transaction-cost analysis as HTML and PNG (``tca_report``)."""
