"""Synthetic multitrack music and MUSDB18-HQ / CAD1-shaped datasets, generated offline.

Modules (pure numpy/scipy synthesis):

- ``config``: every tunable number (:class:`~data_prep.config.SynthConfig`) and the dataset presets.
- ``theory``, ``composer``: keys, chords, song form; :func:`~data_prep.composer.compose_song` gives a
  :class:`~data_prep.composer.SongPlan` (tempo, sections, which stems play where, silent spans).
- ``dsp``, ``tones``: oscillators, envelopes, filters, STFT, panning, room reverb; wavetable notes.
- ``drums``, ``bass``, ``harmony``, ``vocals``: the four instrument parts.
- ``synth``: :func:`~data_prep.synth.render_song` (four 16-bit-exact stems), ``write_song`` and the CLI
  ``python -m data_prep.synth``.
- ``layouts``: ``write_musdb_tree`` (MUSDB18-HQ) and ``write_cad1_tree`` (CAD1 Task 1 with metadata).
- ``listeners``: synthetic audiograms in the clarity listener schema.
- ``demo``: the demo dataset, ``ensure_demo_dataset()`` / ``python -m data_prep.demo``.
- ``plot``: ``python -m data_prep.plot SONG_DIR`` draws the stems' spectrograms.
- ``analysis``: pitch (YIN), band shares, transient measures used to check the stems.
"""
