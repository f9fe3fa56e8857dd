"""Where models serve: deployment targets behind one interface (batch, SageMaker, Vertex AI, Azure ML)."""
