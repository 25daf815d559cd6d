"The estimate layer: the resolved run (`run`), the memory model (`memory`), the time model (`time`) and the calibration against measurements (`calibrate`)."
