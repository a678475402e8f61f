# Regenerates the numpy-made fixtures read by npy_test.go:
#   cd internal/npy/testdata && /usr/bin/python3 make_fixtures.py
import numpy as np
from numpy.lib import format as fmt

a23 = (np.arange(6, dtype="<f4").reshape(2, 3) * 0.5 - 1).astype("<f4")
np.save("numpy_v1_2x3.npy", a23)
with open("numpy_v2_3x2x2.npy", "wb") as f:
    fmt.write_array(f, np.arange(12, dtype="<f4").reshape(3, 2, 2) / 4, version=(2, 0))
np.save("numpy_scalar.npy", np.float32(3.5))
np.save("numpy_empty_0x4.npy", np.zeros((0, 4), dtype="<f4"))
np.save("numpy_special.npy", np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45, 3.4028235e38], dtype="<f4"))
np.save("numpy_f8.npy", a23.astype("<f8"))
np.save("numpy_be_f4.npy", a23.astype(">f4"))
np.save("numpy_i4.npy", np.arange(6, dtype="<i4"))
np.save("numpy_fortran.npy", np.asfortranarray(a23))
