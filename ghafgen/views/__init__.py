"""Stage 4, views for people: the ownership and runtime table of `show`, the
diagrams, the device reference and the discovery report.

Entry points: `show.render_text(profile, board)`, `diagram.svg(...)`,
`devicedoc.render(...)`, `report.discovery_text(...)`.
"""
