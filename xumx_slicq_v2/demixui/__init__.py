"""The web mixer: ``python -m xumx_slicq_v2.demixui [--input-file SONG]`` serves a local page that separates a
song while it plays, mixes the four stems live and plays them as a listener with hearing loss would hear them
through the NAL-R hearing aid of the Cadenza recipe.

Modules: `cli` (arguments, then the server), `server` (the Starlette app: page, upload, websocket), `songs`
(uploaded songs and their separation, kept on the server), `sessions` (one per open page: what it is sent),
``static/`` (the page: HTML and JavaScript, no build step).
"""
