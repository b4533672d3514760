"""Lightning modules: masked-diffusion training (and, later, distributed evaluation)."""
