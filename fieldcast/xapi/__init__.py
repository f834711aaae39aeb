"""xAPI: learning records sent to the organisation's learning record store (LRS).

What people do with videos (views, what they played, paused and seeked, progress, completion)
becomes statements under the xAPI Video Profile; assignments and comments under ADL verbs. A
statement is recorded as a row of `xapi_statements` in the transaction of what causes it
(`recording`), only for an organisation whose LRS is configured and on, and sent by workers in
batches (`delivery`). The statements' shape is in `statements`; docs/xapi.md lists them.
"""
