"""``interlock bench``'s benchmarks: the engine alone (:mod:`.engine`), the mock services' fault
layer (:mod:`.services`), registrations end to end (:mod:`.registration`), what an attached
dashboard costs a burst and how it answers keys (:mod:`.dashboard`, its process
:mod:`.dashboard_probe`, its bursts :mod:`.burst`), and the machine's state printed beside their
numbers (:mod:`.machine`)."""
