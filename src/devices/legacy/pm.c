/* SPDX-License-Identifier: MIT */
#include "pm.h"

#include <errno.h>
#include <stdlib.h>

#include "devstate.h"

#define STS_MASK     PM1_STS_PWRBTN /* the only event this model raises */
#define EN_MASK	     0x4721	    /* TMR, GBL, PWRBTN, SLPBTN, RTC, PCIEXP_WAKE_DIS */
#define SLP_TYP_MASK 0x1c00
#define CNT_BM_RLD   0x0002
#define CNT_KEEP     (PM1_CNT_SCI_EN | CNT_BM_RLD | SLP_TYP_MASK)

static void pm_update_irq(struct pm *pm)
{
	int level = (pm->sts & pm->en & PM1_EN_PWRBTN) != 0;
	if (level == pm->irq_level)
		return;
	pm->irq_level = level;
	if (pm->irq)
		pm->irq(pm->opaque, level);
}

static void pm_evt_read(void *dev, uint64_t off, void *data, unsigned len)
{
	const struct pm *pm = dev;
	uint8_t *p = data;
	for (unsigned i = 0; i < len; i++) {
		uint64_t o = off + i;
		uint16_t reg = o < 2 ? pm->sts : pm->en;
		p[i] = o < PM_EVT_LEN ? (uint8_t)(reg >> (o % 2 * 8)) : 0xff;
	}
}

static void pm_evt_write(void *dev, uint64_t off, const void *data, unsigned len)
{
	struct pm *pm = dev;
	const uint8_t *p = data;
	for (unsigned i = 0; i < len; i++) {
		uint64_t o = off + i;
		uint16_t v = (uint16_t)(p[i] << (o % 2 * 8));
		if (o < 2)
			pm->sts &= (uint16_t)~v; /* write 1 to clear */
		else if (o < PM_EVT_LEN)
			pm->en = (uint16_t)((pm->en & ~(0xff << (o % 2 * 8))) | v) & EN_MASK;
	}
	pm_update_irq(pm);
}

static void pm_cnt_read(void *dev, uint64_t off, void *data, unsigned len)
{
	const struct pm *pm = dev;
	uint8_t *p = data;
	for (unsigned i = 0; i < len; i++) {
		uint64_t o = off + i;
		p[i] = o < PM_CNT_LEN ? (uint8_t)(pm->cnt >> (o * 8)) : 0xff;
	}
}

static void pm_cnt_write(void *dev, uint64_t off, const void *data, unsigned len)
{
	struct pm *pm = dev;
	const uint8_t *p = data;
	for (unsigned i = 0; i < len; i++) {
		uint64_t o = off + i;
		if (o >= PM_CNT_LEN)
			continue;
		/* the other byte keeps its value; SLP_EN is never stored, so only
		 * a write of the high byte can carry it */
		uint16_t v = (uint16_t)((pm->cnt & ~(0xff << (o * 8))) | p[i] << (o * 8));
		pm->cnt = (uint16_t)((v & CNT_KEEP) | PM1_CNT_SCI_EN);
		unsigned typ = (v & SLP_TYP_MASK) >> PM1_SLP_TYP_SHIFT;
		if ((v & PM1_CNT_SLP_EN) && typ == pm->s5_typ && pm->sleep)
			pm->sleep(pm->opaque, (int)typ);
	}
}

const struct bus_dev_ops pm_evt_bus_ops = {
    .read = pm_evt_read,
    .write = pm_evt_write,
};

const struct bus_dev_ops pm_cnt_bus_ops = {
    .read = pm_cnt_read,
    .write = pm_cnt_write,
};

int pm_create(unsigned s5_typ, pm_sleep_fn sleep, pm_irq_fn irq, void *opaque, struct pm **out)
{
	if (s5_typ > 7)
		return -EINVAL;
	struct pm *pm = calloc(1, sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	pm->s5_typ = s5_typ;
	pm->sleep = sleep;
	pm->irq = irq;
	pm->opaque = opaque;
	pm_reset(pm);
	*out = pm;
	return 0;
}

void pm_destroy(struct pm *pm)
{
	free(pm);
}

void pm_reset(struct pm *pm)
{
	pm->sts = 0;
	pm->en = 0;
	pm->cnt = PM1_CNT_SCI_EN;
	pm_update_irq(pm);
}

void pm_power_button(struct pm *pm)
{
	pm->sts |= PM1_STS_PWRBTN;
	pm_update_irq(pm);
}

int pm_save(const struct pm *pm, void *buf, size_t cap)
{
	uint8_t *p = buf;
	int rc = devstate_begin(p, cap, PM_STATE_MAGIC, PM_STATE_VERSION, PM_STATE_SIZE);
	if (rc)
		return rc;
	devstate_put16(p + 8, pm->sts);
	devstate_put16(p + 10, pm->en);
	devstate_put16(p + 12, pm->cnt);
	return PM_STATE_SIZE;
}

int pm_restore(struct pm *pm, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	if (devstate_check(p, len, PM_STATE_MAGIC, PM_STATE_VERSION, PM_STATE_SIZE))
		return -EINVAL;
	uint16_t sts = devstate_get16(p + 8), en = devstate_get16(p + 10),
		 cnt = devstate_get16(p + 12);
	if (sts & ~STS_MASK || en & ~EN_MASK || cnt & ~CNT_KEEP || !(cnt & PM1_CNT_SCI_EN) ||
	    devstate_zero(p + 14, 2))
		return -EINVAL;
	pm->sts = sts;
	pm->en = en;
	pm->cnt = cnt;
	pm_update_irq(pm);
	return 0;
}
