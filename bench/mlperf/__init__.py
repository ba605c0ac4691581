"""The MLPerf Tiny image-classification benchmark on our boards: EEMBC's runner driven in its text mode, the dataset and the results."""
