"""Run the whole service on one machine, against an embedded AWS endpoint, with no AWS account."""
