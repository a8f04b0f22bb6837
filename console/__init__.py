"""The Streamlit admin console: pages over the Paradyze function URLs, never the database."""
