# The demo project's Snakefile: exactly what `nbsweep init` writes into a project.
# nbsweep's workflow ships in the installed package; this file only pulls it in.
import nbsweep


module nbsweep:
    snakefile:
        nbsweep.snakefile()
    config:
        config


use rule * from nbsweep
