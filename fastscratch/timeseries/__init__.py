"""Time-series models: seasonal ARIMA with regressors (:mod:`.arima`) and an LSTM forecaster
(:mod:`.lstm`).

Import the models from :mod:`fastscratch` (``fastscratch.ARIMA`` or its alias
``fastscratch.SARIMAX``, ``fastscratch.auto_arima``, ``fastscratch.LSTMForecaster``); the submodules
are imported on first use so that PyTorch loads only for the LSTM.
"""
