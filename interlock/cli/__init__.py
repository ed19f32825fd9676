"""The ``interlock`` command line: :mod:`.main` builds the parser and runs a command; one module
per command group (:mod:`.up`, :mod:`.tasks`, :mod:`.faults`, :mod:`.bench`)."""
