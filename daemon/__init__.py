"""hotline-sla: deadline and SLA monitoring for 12345 government service hotlines (12345政务服务便民热线)."""

__version__ = "0.1.0"
