"""Documents a chat can quote: parsing files into sections, cutting them into chunks,
and the collections, files and chunks kept in the store for keyword (and vector)
retrieval. Pure Python, no Qt."""
