"""Pure card views for Teams and Slack: state in, JSON out.

No I/O, no clock (``now`` is a parameter), no environment. Imports only engine's data types
and, in ``cards.slack``, slack_sdk's block models (for their validation).

* ``cards.views``   the frozen view of each moment, filled by the bot from a job
* ``cards.actions`` the one button contract: ``CardAction(verb, job_id, plan_hash)`` and its
  Teams / Slack wire formats and strict parsers
* ``cards.forms``   the request form's field ids and submission parsers
* ``cards.teams``   Adaptive Card 1.5 renderers (``approval_card(view, for_approver=...)``, ...)
* ``cards.slack``   Block Kit renderers (``approval_message(view)``, ``request_modal(view)``, ...)
* ``cards.text``    how text from people is made inert for each platform
* ``cards.moments``, ``cards.layout``, ``cards.wording``: one platform-neutral drawing of each
  moment, so both platforms always say the same thing; each renderer's ``moment`` draws those
  it shows unchanged (``teams.moment.status(view, now)``)
"""
