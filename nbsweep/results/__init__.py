"""What a sweep found: summary files, index.html, renderings, MLflow."""
