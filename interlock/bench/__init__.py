"""``interlock bench``'s benchmarks: the engine alone (:mod:`.engine`), the mock services' fault
layer (:mod:`.services`), registrations end to end (:mod:`.registration`), and the machine's
state printed beside their numbers (:mod:`.machine`)."""
