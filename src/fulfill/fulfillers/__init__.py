"""Third-party fulfillers: orders placed at a fulfiller such as Amazon MCF, and its stock.

The package was ``third_party`` (a name common tools take for vendored code); what is stored
and sent keeps that word (the node kind ``third_party``, the outbox topics ``third_party.*``,
the beat task ``third_party.sync``, the tables), so a database and a queue carry over as they are.
"""
