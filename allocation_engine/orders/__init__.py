"""The pure order lifecycle: model, state machines, commands, workflow definitions, events.

No I/O: the service layer loads and stores orders through ports.
"""
