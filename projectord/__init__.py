"""projectord: the only writer of the kanade projection database."""
