"""auto_arima placeholder (being written)."""


def auto_arima(y, seasonal=True, m=12, **kwargs):
    raise NotImplementedError
