"""The LRS's resources, one module each, under /xapi: statements, documents (state,
activity and agent profiles), activities and agents, about. Each handler takes
(lrs, xr): the LRS's dependencies (deps.Lrs) and the request as protocol.py made it;
it returns a Response or raises, and protocol.answer does the rest."""
