"""Reports: unit scoring, the monthly ranking (评优评差), digests."""
