"""unetmm.trainers: data, degradations, metrics, the proxy score and full training."""
