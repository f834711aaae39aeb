"""Media work: storage, probing and ffmpeg. Knows nothing of the database."""
