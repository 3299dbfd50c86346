"""aptpipe: a Luigi batch pipeline that keeps a Korean apartment sale-price model current."""
__version__ = "0.1.0"
