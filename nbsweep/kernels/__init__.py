"""Jupyter kernels for runs: started privately, forked from a preloaded zygote, stopped by nbsweep."""
