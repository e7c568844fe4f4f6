"""sanigrid web: the FastAPI app and its folium map pages."""
