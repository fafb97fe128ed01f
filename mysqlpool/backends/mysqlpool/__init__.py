"""The pooled MySQL ENGINE: ``'ENGINE': 'mysqlpool.backends.mysqlpool'``."""
