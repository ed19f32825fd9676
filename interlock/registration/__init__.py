"""The user-registration workflow: its template (``user_registration.yaml``, loaded by
:mod:`interlock.registration.template`) and the handlers that run its steps
(:mod:`interlock.registration.handlers`)."""
