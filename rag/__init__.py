"""Knowledge files and retrieval (planned: files, chunking, embeddings, pgvector search)."""
