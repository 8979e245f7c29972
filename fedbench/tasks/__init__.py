"""Tasks: model builders and the LightningModule that trains them."""
